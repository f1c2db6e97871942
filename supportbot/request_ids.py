"""A request id for every request Django serves: bound for its log lines (conversations.log_context)
and answered in the X-Request-ID header, so an operator can find a request's lines."""

from asgiref.sync import iscoroutinefunction
from django.utils.decorators import sync_and_async_middleware

from conversations import log_context

HEADER = "X-Request-ID"


@sync_and_async_middleware
def request_id_middleware(get_response):
    if iscoroutinefunction(get_response):

        async def middleware(request):
            request_id = log_context.new_request_id()
            with log_context.bound(request_id=request_id):
                response = await get_response(request)
            response[HEADER] = request_id
            return response

    else:

        def middleware(request):
            request_id = log_context.new_request_id()
            with log_context.bound(request_id=request_id):
                response = get_response(request)
            response[HEADER] = request_id
            return response

    return middleware
