"""The bot learns from its agents: questions handed over for lack of an answer, and the
replies agents gave, become knowledge-base suggestions (``knowledge.suggestions``);
an admin approves them into articles.

- ``harvest``: resolved ``no_answer`` handoffs and replies agents mark, masked, as items;
- ``drafting``: an LLM's draft of each suggestion (checked like answers), when configured;
- ``service``: what the HTTP routes and the periodic job call.
"""

from bot.learning.service import LearningService

__all__ = ["LearningService"]
