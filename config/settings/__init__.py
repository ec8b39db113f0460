"""Django settings: `base` reads the environment once (through `config.env`); others override."""
