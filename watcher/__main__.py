from watcher.main import entry

entry()
