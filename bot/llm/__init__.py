"""LLM fallback chains on litellm (only ``bot.llm.adapter`` imports litellm)."""

from bot.llm.chain import LLMChain
from bot.llm.config import ChainConfig, load_chain_file, parse_chain_yaml
from bot.llm.generation import ChainAnswerGenerator, ChainIntentClassifier, ChainSummarizer
from bot.llm.metrics import LLMMetrics
from bot.llm.service import LLMService, ModelTest

__all__ = [
    "ChainAnswerGenerator",
    "ChainConfig",
    "ChainIntentClassifier",
    "ChainSummarizer",
    "LLMChain",
    "LLMMetrics",
    "LLMService",
    "ModelTest",
    "load_chain_file",
    "parse_chain_yaml",
]
