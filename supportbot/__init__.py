"""The Django project: settings from the environment (settings, env), URL and ASGI routing (urls,
asgi, machine_http), health checks and system checks. May import any app; no app imports it.
"""
