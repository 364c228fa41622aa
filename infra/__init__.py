"""The AWS CDK app for Kontex: constructs per capability, composed in ``stack.KontexStack``."""
