"""HTTP routes: TGI's native API, the OpenAI-compatible API, and the info/ops endpoints."""
