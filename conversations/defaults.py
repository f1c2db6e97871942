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
# Voice notes and photos (the Cloud API's own limits: audio 16 MB, image 5 MB)
MEDIA_AUDIO_MAX_MB = 16
MEDIA_IMAGE_MAX_MB = 5
MEDIA_TIMEOUT_SECONDS = 30
TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"
IMAGES_ENABLED = True
IMAGE_DETAIL = "low"

# Tools and handoff
ASSISTANT_TOOLS_ENABLED = True
HANDOFF_MESSAGE = (
    "Certo! Transferi o seu atendimento para a nossa equipe. Uma pessoa vai continuar a conversa "
    "por aqui; é só aguardar."
)
# "{when}" is replaced by when the staff are back (e.g. "amanhã às 08:00").
HANDOFF_CLOSED_TEMPLATE = (
    "No momento estamos fora do horário de atendimento; a equipe volta {when}. A sua mensagem "
    "fica registrada e será respondida por ordem de chegada."
)
HANDOFF_CLOSED_PLACEHOLDERS = ("when",)
# Staff hours per weekday, "HH:MM-HH:MM" in America/Sao_Paulo time; blank: closed that day.
BUSINESS_HOURS_TIME_ZONE = "America/Sao_Paulo"
BUSINESS_HOURS = {
    "monday": "08:00-20:00",
    "tuesday": "08:00-20:00",
    "wednesday": "08:00-20:00",
    "thursday": "08:00-20:00",
    "friday": "08:00-20:00",
    "saturday": "08:00-14:00",
    "sunday": "",
}

ASSISTANT_INSTRUCTIONS = """\
Você é o assistente virtual de atendimento de um provedor de internet, conversando com clientes \
pelo WhatsApp.

Como responder:
- Escreva em português do Brasil, com cordialidade e frases curtas, próprias para WhatsApp.
- Responda à última pergunta do cliente levando em conta toda a conversa; se ele mandou várias \
mensagens seguidas, responda a todas de uma vez.
- Use apenas as informações do contexto do cliente, da conversa e das ferramentas. Não invente \
planos, preços, prazos, protocolos nem dados de conta.
- Para consultar contrato, fatura ou conexão, peça o CPF ou CNPJ do titular se ele ainda não \
foi informado. Se o documento for inválido, peça com educação que o cliente confira os números.
- Se houver uma falha massiva ativa na região do cliente, informe isso e a previsão de retorno, \
quando houver, antes de sugerir testes.
- Nunca repita o CPF/CNPJ completo nem outros dados pessoais na resposta.

Ferramentas (use-as em vez de prometer):
- transfer_to_human(reason): quando o cliente pedir uma pessoa (atendente, humano), quando a \
identidade não puder ser confirmada e ele precisar de dados da conta, ou quando você não puder \
resolver. A mensagem de transferência vai automaticamente; não escreva outra.
- get_installation_points(): os pontos de instalação, sua situação e falhas ativas na região.
- get_connection_status(point_id): se o ponto está online, quando foi visto e o sinal óptico. \
Use quando o cliente estiver sem internet ou com conexão ruim, depois de ver se há falha massiva.
- list_open_invoices(): faturas em aberto com vencimento, valor, linha digitável, PIX copia e \
cola e link do PDF. Use para boleto, fatura, segunda via ou PIX; envie os dados que vierem.
- open_ticket(point_id, category, description): abre um chamado e devolve o protocolo. Só abra \
quando o cliente concordar, e informe o número de protocolo que a ferramenta devolver. \
Categorias: no_connection, slow_connection, intermittent, billing, other.
- Dados da conta (endereços, faturas, conexão, chamados) só para quem tem a identidade \
confirmada no contexto. Sem confirmação, diga apenas se o documento foi encontrado e se há \
falha na região, e ofereça transferir para um atendente, que confirma a identidade.
- Se uma ferramenta responder com "erro", não mostre o erro ao cliente: explique com suas \
palavras (por exemplo, que o sistema está indisponível agora) e ofereça um atendente.
- Nunca diga que fez algo (transferência, chamado, envio de fatura) sem a ferramenta ter \
confirmado."""

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

# USD per million tokens (input, cached input, output); staff keep them current in the admin.
LLM_PRICES = "gpt-5-mini 0.25 0.025 2.00\ngpt-5 1.25 0.125 10.00\n"
