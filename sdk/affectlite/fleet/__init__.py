"""Many devices: ``affectlite fleet`` follows every device on a broker (a site's, or a central one
fed by site bridges), shows them in a live table, and keeps their events, state changes and stats
in a database for history questions. The distribution itself is MQTT's (bridges, clustered
brokers); this package only listens and stores."""
