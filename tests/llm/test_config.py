"""The chain configuration (litellm Router YAML + atiende block) and sealed secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import LLMConfigError
from bot.llm import secrets as sealing
from bot.llm.config import load_chain_file, parse_chain_yaml

EXAMPLE = """
model_list:
  - model_name: primary
    litellm_params: {model: groq/openai/gpt-oss-120b, api_key: os.environ/GROQ_KEY_1, timeout: 4}
  - model_name: primary
    litellm_params: {model: groq/openai/gpt-oss-120b, api_key: gsk_literal_key_0001, timeout: 4}
  - model_name: backup
    litellm_params: {model: openai/gpt-4o-mini, api_key: sk-openai-literal-9999, timeout: 5}
  - model_name: claude
    litellm_params: {model: anthropic/claude-haiku-4-5, api_key: os.environ/ANTHROPIC_API_KEY}
  - model_name: gemini
    litellm_params: {model: gemini/gemini-2.5-flash-lite, api_key: os.environ/GEMINI_API_KEY}
  - model_name: local
    litellm_params: {model: ollama/llama3.1, api_base: "http://127.0.0.1:11434", timeout: 6}
router_settings:
  fallbacks: [{primary: [backup, claude]}, {gemini: [local]}]
  num_retries: 1
  cooldown_time: 30
atiende:
  answer_model: primary
  intent_model: gemini
  summary_model: gemini
  budget_seconds: 8
  memory_tokens: 1200
"""


def test_readme_example_parses_with_orders_per_use() -> None:
    config = parse_chain_yaml(EXAMPLE)
    assert config.model_names == ["primary", "backup", "claude", "gemini", "local"]
    assert config.chain_for(config.model_for("answer")) == ["primary", "backup", "claude"]
    assert config.chain_for(config.model_for("intent")) == ["gemini", "local"]
    kwargs = config.router_kwargs()
    assert kwargs["num_retries"] == 1 and kwargs["cooldown_time"] == 30
    assert kwargs["allowed_fails_policy"]["TimeoutErrorAllowedFails"] == 0  # our default
    assert [d.provider for d in config.model_list][:3] == ["groq", "groq", "openai"]


@pytest.mark.parametrize("text, fragment", [
    ("model_list: []", "model_list"),
    ("model_list: [{model_name: a, litellm_params: {api_key: x}}]", "litellm_params.model"),
    ("model_list: [{model_name: a, litellm_params: {model: openai/x}}]\n"
     "router_settings: {fallbacks: [{a: [nope]}]}", "nope"),
    ("model_list: [{model_name: a, litellm_params: {model: openai/x}}]\n"
     "atiende: {answer_model: b}", "answer_model"),
    ("model_list: [{model_name: a, litellm_params: {model: openai/x}}]\n"
     "router_settings: {redis_host: evil}", "redis_host"),
    ("model_list: [{model_name: a, litellm_params: {model: openai/x}}]\n"
     "atiende: {budget_seconds: 0}", "budget_seconds"),
    ("model_list: [unclosed", "YAML"),
    ("- just a list", "mapping"),
])
def test_invalid_configs_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(LLMConfigError) as caught:
        parse_chain_yaml(text)
    assert fragment in str(caught.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(LLMConfigError, match="cannot read"):
        load_chain_file(tmp_path / "nope.yaml")


def test_secrets_are_sealed_masked_and_restored() -> None:
    config = parse_chain_yaml(EXAMPLE)
    box = sealing.SecretBox("a-long-secret-key-for-tests-0123456789")
    stored = sealing.seal_config(config, box)
    params = [d["litellm_params"] for d in stored["model_list"]]
    assert params[0]["api_key"] == "os.environ/GROQ_KEY_1"  # a reference, not a secret
    assert params[1]["api_key"].startswith("fernet:")
    assert "gsk_literal_key_0001" not in str(stored)
    assert sealing.open_config(stored, box) == config

    masked = sealing.masked_document(config)
    keys = [d["litellm_params"].get("api_key") for d in masked["model_list"]]
    assert keys[:3] == ["os.environ/GROQ_KEY_1", "••••0001", "••••9999"]
    assert sealing.unmask(masked, config) == config.to_document()

    with pytest.raises(LLMConfigError, match="decrypted"):
        sealing.open_config(stored, sealing.SecretBox("another-key-entirely-0000000000"))
