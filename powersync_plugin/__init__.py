"""dokku-powersync: PowerSync Service instances as Dokku apps, journaled and replayable."""
