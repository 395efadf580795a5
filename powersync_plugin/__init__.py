"""dokku-powersync: PowerSync Service instances as Dokku apps, journaled and replayable."""

PLUGIN = "powersync"  # the namespace: `dokku powersync:<command>` (here so the entry needs no click)
