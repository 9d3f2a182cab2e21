"""Manages a key through the native API with the client generated from openapi/openapi.json,
reads which credential the user's calls use, and resolves it as a backend with a service token.

Run by scripts/clients with the generated package on PYTHONPATH and LLM_SETTINGS_URL,
USER_TOKEN (scopes `read write`, instance `acme`) and SERVICE_TOKEN (role `service`) set.
"""

import os

from llm_settings_client import AuthenticatedClient
from llm_settings_client.api.credential_resolution import credentials_resolve
from llm_settings_client.api.user_llm_settings import (
    user_create_config,
    user_effective,
    user_get_config,
    user_update_config,
)
from llm_settings_client.models import (
    CreateConfigRequest,
    DetailCodeError,
    EffectiveResponse,
    LlmSettingsResponse,
    ResolveBody,
    ResolveResponse,
    UpdateConfigRequest,
)

URL = os.environ["LLM_SETTINGS_URL"]
KEY = "sk-example-python-0123456789abcd"


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"unexpected answer: {what}")
    print(f"  ok: {what}")


user = AuthenticatedClient(base_url=URL, token=os.environ["USER_TOKEN"])
service = AuthenticatedClient(base_url=URL, token=os.environ["SERVICE_TOKEN"])

# Store a key: the answer shows its last four characters, never the key.
body = CreateConfigRequest(provider="anthropic", api_key=KEY, model="claude-sonnet-4-5")
config = user_create_config.sync(client=user, body=body)
check(isinstance(config, LlmSettingsResponse), "key stored")
assert isinstance(config, LlmSettingsResponse)
check(config.api_key_last_4 == "abcd" and config.is_default, "masked and made the default")

# Change the model; the version read makes a concurrent change fail with 409.
patch = UpdateConfigRequest(model="claude-opus-4-1", version=config.version)
updated = user_update_config.sync(client=user, config_id=config.id, body=patch)
check(isinstance(updated, LlmSettingsResponse) and updated.model == "claude-opus-4-1", "model changed")
stale = user_update_config.sync_detailed(client=user, config_id=config.id, body=patch)
check(stale.status_code == 409 and isinstance(stale.parsed, DetailCodeError), "stale update refused")

# Errors are typed in the surface's shape.
missing = user_get_config.sync(client=user, config_id=config.id + 1000)
check(isinstance(missing, DetailCodeError) and missing.error_code == "not_found", "unknown id is 404")

# What the user's calls use (for a settings page: never the key).
effective = user_effective.sync(client=user)
check(isinstance(effective, EffectiveResponse) and effective.source.owner == "user", "effective: own key")

# A backend resolves the same credential for this user, key included.
resolved = credentials_resolve.sync(client=service, body=ResolveBody(user="alice", instance="acme"))
check(isinstance(resolved, ResolveResponse), "resolved with a service token")
assert isinstance(resolved, ResolveResponse)
check(resolved.credentials["api_key"] == KEY and resolved.model == "claude-opus-4-1", "the stored key and model")
check(resolved.source.config_id == config.id and resolved.source.owner == "user", "from the user's config")
print("Python example: all checks passed")
