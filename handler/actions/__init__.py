"""One module per action: validate, call a service, shape the output."""
