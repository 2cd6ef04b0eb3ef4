"""Where files are kept: a local folder or an S3 bucket behind one interface
(:class:`assets.storage.targets.Target`), for the raw store, the inbox and releases."""
