"""allauth login stages of our own, loaded by allauth by dotted path (``accounts.adapter.AccountAdapter``);
kept apart from the adapter because importing allauth's stages at start-up runs into an import cycle."""
from allauth.account.stages import EmailVerificationStage


class SignUpEmailVerificationStage(EmailVerificationStage):
    """allauth's confirmation step, for people who signed up through the form (``User.signed_up``) only."""

    def handle(self):
        if not self.login.user.signed_up:
            return None, True
        return super().handle()
