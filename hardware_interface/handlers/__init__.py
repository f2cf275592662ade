"""JSON-RPC method handlers of the hardware daemon, one class per method group."""
