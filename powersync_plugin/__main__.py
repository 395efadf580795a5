from powersync_plugin.cli import main

main()
