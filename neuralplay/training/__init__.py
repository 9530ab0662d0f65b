"""Secondary subpackage (needs the [train] extra): collect data, train, evaluate, export."""
