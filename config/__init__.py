"""Project configuration: settings (base + thin overrides), the ASGI app and the URL map."""
