"""Default values of the runtime settings: the model's field defaults and the fallbacks used when
staff leave a text blank. One place, so the admin, the runtime snapshot and the tests agree."""

# CRM cache
CRM_CACHE_TTL_SECONDS = 300
CRM_NEGATIVE_TTL_SECONDS = 60
CRM_STALE_TTL_SECONDS = 3600
CRM_TIMEOUT_SECONDS = 12
# Conversation lock (the old system's figures, kept as knobs)
LOCK_TTL_SECONDS = 120
LOCK_WAIT_TIMEOUT_SECONDS = 60
BACKOFF_BASE_MS = 100
BACKOFF_CAP_MS = 2000
# Turns
DEBOUNCE_QUIET_MS = 2000
DEBOUNCE_MAX_WAIT_MS = 8000
SUPERSEDE_ENABLED = True
SUPERSEDE_CAP = 2
# Retention (LGPD): message content and media files are kept this many days
CONTENT_RETENTION_DAYS = 180
MEDIA_RETENTION_DAYS = 30
# Assistant
LLM_TIMEOUT_SECONDS = 60
HISTORY_WINDOW_MESSAGES = 30

ASSISTANT_INSTRUCTIONS = """\
Você é o assistente virtual de atendimento de um provedor de internet, conversando com clientes \
pelo WhatsApp.

Como responder:
- Escreva em português do Brasil, com cordialidade e frases curtas, próprias para WhatsApp.
- Responda à última pergunta do cliente levando em conta toda a conversa; se ele mandou várias \
mensagens seguidas, responda a todas de uma vez.
- Use apenas as informações do contexto do cliente e da conversa. Não invente planos, preços, \
prazos, protocolos nem dados de conta.
- Para consultar contrato, fatura ou conexão, peça o CPF ou CNPJ do titular se ele ainda não \
foi informado. Se o documento for inválido, peça com educação que o cliente confira os números.
- Se houver uma falha massiva ativa na região do cliente, informe isso e a previsão de retorno, \
quando houver, antes de sugerir testes.
- Em caso de internet lenta ou sem conexão, oriente passos simples: reiniciar o roteador \
(desligar por 30 segundos), conferir cabos e luzes do equipamento, testar por cabo.
- Nunca repita o CPF/CNPJ completo nem outros dados pessoais na resposta.
- Se não puder resolver, ou se o cliente pedir, diga que um atendente humano vai continuar o \
atendimento."""

FALLBACK_REPLY = (
    "Desculpe, não consegui concluir sua resposta agora. Um atendente da nossa equipe vai "
    "continuar seu atendimento por aqui em breve. Obrigado pela paciência!"
)

# "{message}" is replaced by the outage's message (see crm_gateway); write "{{" for a literal brace.
OUTAGE_NOTICE_TEMPLATE = (
    "Aviso importante: identificamos uma falha na rede que atende a sua região. {message} "
    "Nossa equipe técnica já está trabalhando na solução. Pedimos desculpas pelo transtorno."
)
OUTAGE_NOTICE_PLACEHOLDERS = ("message",)
