"""Admin login throttling: django-axes' backend, for logins that come with a request."""

from axes.backends import AxesStandaloneBackend


class AdminLoginThrottle(AxesStandaloneBackend):
    """Refuses logins of a locked-out user name or IP address (settings: AXES_*).

    Logins without a request (a management command checking a password) have no IP address to
    count and are not throttled: axes' own backend would raise instead of passing them on.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
