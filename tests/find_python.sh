# find_python VERSION: the path of the first interpreter of that version ("3.13"), or status 1.
# Sourced by .ci/run and tests/home_assistant_venv.sh; tests/home_assistant_core.py looks in the same places.
find_python() {   # a pyenv shim answers to the name without having the version: each candidate is asked
    local want="$1" candidate
    for candidate in "python$want" "$HOME"/.pyenv/versions/"$want".*/bin/python3 "/usr/bin/python$want" \
                     "/usr/local/bin/python$want"; do
        if "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$want'.split('.'))))" \
                >/dev/null 2>&1; then
            "$candidate" -c 'import sys; print(sys.executable)'
            return 0
        fi
    done
    return 1
}
