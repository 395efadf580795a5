from powersync_plugin.entry import main

main()
