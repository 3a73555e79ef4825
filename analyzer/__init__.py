"""efftrace's analyzer: turns a trace recorded by ``effrec`` into the EfficientLLM metrics."""
