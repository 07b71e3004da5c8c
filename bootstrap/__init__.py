"""The bootstrap program (its own Pulumi project): see __main__.py."""
