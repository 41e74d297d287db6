"""What every dashboard view of this app shares."""
from accounts.services import Actor


def request_actor(request) -> Actor:
    context = request.account_context
    return Actor(user=request.user, support_mode=context.support_mode, role=context.role or "")
