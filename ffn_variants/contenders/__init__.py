"""FFNs brought in through the public path, as a user brings their own: plain modules with the
factory signature (d_model, d_ff, **kwargs), named in configs/ffn/ by `target:` and matched,
counted and watched like the built-ins. Nothing in the package refers to them by name."""
