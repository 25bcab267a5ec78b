"""One module per `fraudpipe` sub-command; each exposes `add_parser(subparsers)`."""
