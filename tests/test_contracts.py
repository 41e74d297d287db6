"""Every registered adapter inherits its contract suite, and every API route the cross-tenant one.

Adding a vendor is a new package plus one registry line; adding an API resource is one router line.
These tests fail until the new thing also has its contract subclass in ``tests/``.
"""
import importlib
import pkgutil
import sys
from pathlib import Path

import tests
from billers.registry import BILLER_ADAPTERS
from billmysales.urls import router
from sources.base import DocumentWriteBack, WebhookReceiver
from sources.registry import SOURCE_ADAPTERS
from tests.accounts.tenancy import CrossTenantContract
from tests.billers.contracts import BillerContract
from tests.sources.contracts import StoreWebhookContract, StoreWriteBackContract


def _subclasses(base: type) -> list[type]:
    root = Path(tests.__file__).parent
    for module in pkgutil.walk_packages([str(root)], prefix="tests."):
        if module.name.rsplit(".", 1)[-1].startswith("test_"):
            importlib.import_module(module.name)
    found, pending = [], list(base.__subclasses__())
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_biller_adapter_inherits_the_biller_contract():
    covered = {cls.provider for cls in _subclasses(BillerContract) if getattr(cls, "provider", None)}
    assert set(BILLER_ADAPTERS) - covered == set()


def test_every_pushing_store_inherits_the_webhook_contract():
    pushing = {name for name, adapter in SOURCE_ADAPTERS.items() if issubclass(adapter, WebhookReceiver)}
    covered = {cls.platform for cls in _subclasses(StoreWebhookContract) if getattr(cls, "platform", None)}
    # A store whose webhooks are unsigned hints (Multivende names a checkout, the adapter re-reads it) cannot pass
    # the signed contract: a test class of its own declares ``unsigned_webhook_platform`` (modules imported above).
    covered |= {
        cls.unsigned_webhook_platform
        for name, module in list(sys.modules.items()) if name.startswith("tests.")
        for cls in vars(module).values() if isinstance(cls, type) and getattr(cls, "unsigned_webhook_platform", None)
    }
    assert pushing - covered == set()


def test_every_store_that_writes_back_inherits_the_write_back_contract():
    writing = {name for name, adapter in SOURCE_ADAPTERS.items() if issubclass(adapter, DocumentWriteBack)}
    covered = {cls.platform for cls in _subclasses(StoreWriteBackContract) if getattr(cls, "platform", None)}
    assert writing - covered == set()


def test_every_api_route_inherits_the_cross_tenant_contract():
    routes = {f"/api/v1/{prefix}/" for prefix, _viewset, _basename in router.registry}
    covered = {cls.list_url for cls in _subclasses(CrossTenantContract) if getattr(cls, "list_url", None)}
    assert routes - covered == set()
