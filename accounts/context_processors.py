def current_account(request):
    context = getattr(request, "account_context", None)
    if context is None or not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"current_account": context.account, "current_role": context.role, "support_mode": context.support_mode}
