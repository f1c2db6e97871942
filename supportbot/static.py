"""Static files without a proxy (issue 14): WhiteNoise serves collectstatic's output."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Hashed, compressed names; a file missing from the manifest (collectstatic not run yet,
    as in the tests or a fresh checkout) is linked by its plain name instead of failing the
    page."""

    manifest_strict = False

    def stored_name(self, name):
        try:
            return super().stored_name(name)
        except ValueError:  # not collected yet: its plain name (served by DEBUG's handler)
            return name
