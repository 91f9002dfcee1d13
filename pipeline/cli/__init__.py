"""The command line, ``python -m pipeline <command> ...``: one module per group of commands, each
registering its parsers with a handler (``args.handler(args)`` returns the exit code); ``main`` maps
errors to exit codes. Handlers parse, call the library and print; the work is below this package."""
