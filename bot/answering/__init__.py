"""How the bot picks an answer: fast rules, the intent router (rules, embedding
classifier, LLM), the responder port, the knowledge responder, the generation ports
and the grounding checks every LLM draft passes."""
