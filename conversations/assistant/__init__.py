"""The assistant's reply for one turn: the OpenAI Responses API (openai_assistant) or the offline
Portuguese assistant (offline) when no key is set; voice notes to text (transcription) and how media
read in the LLM's input (media_input).

May import: conversations' base modules and crm_gateway. Never the engine, the webhook, whatsapp/
or the staff pages: the engine calls the assistant, not the other way round.
"""
