"""The provider contract suite, run for the built-in providers."""

from __future__ import annotations

from omnibatch.testing import ProviderContract
from omnibatch_openai.adapter import OpenAIAdapter
from omnibatch_openai.dialect import OpenAIDialect


class TestOpenAIContract(ProviderContract):
    provider = "openai"
    model = "gpt-4o-mini"


class TestMistralContract(ProviderContract):
    provider = "mistral"
    model = "mistral-small-latest"


class _UnregisteredAdapter(OpenAIAdapter):
    name = "unregistered"
    emulator_prefix = "/unregistered/v1"


class _UnregisteredDialect(OpenAIDialect):
    name = "unregistered"
    prefix = "/unregistered"


class TestContractWithoutARegisteredPlugin(ProviderContract):
    """The suite also runs on classes handed to it directly (a provider not installed yet)."""

    provider = "unregistered"
    adapter_cls = _UnregisteredAdapter
    dialect_cls = _UnregisteredDialect
    model = "gpt-4o-mini"


class TestAzureContract(ProviderContract):
    provider = "azure"
    model = "gpt-4o-mini-batch"  # a Global Batch deployment name


class TestGroqContract(ProviderContract):
    provider = "groq"
    model = "llama-3.1-8b-instant"


class TestDeepInfraContract(ProviderContract):
    provider = "deepinfra"
    model = "meta-llama/Meta-Llama-3.1-8B-Instruct"


class TestDashScopeContract(ProviderContract):
    provider = "dashscope"
    model = "qwen-plus"
