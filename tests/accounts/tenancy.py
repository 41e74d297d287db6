"""The cross-tenant contract every account-owned API endpoint inherits.

A subclass names its list URL and how to make one of its objects in a given account; the contract
proves that another account's object answers 404 (on read and on every action) and never shows up
in a list, and that the caller's own object does (so the 404s are not vacuous).
"""


class CrossTenantContract:
    list_url: str
    # (method, suffix) pairs of detail actions that must also answer 404 for another account's object.
    detail_actions: tuple[tuple[str, str], ...] = ()

    def make_object(self, account):
        raise NotImplementedError

    def detail_url(self, obj) -> str:
        return f"{self.list_url}{obj.pk}/"

    @staticmethod
    def listed_ids(response) -> set:
        body = response.json()
        rows = body["results"] if isinstance(body, dict) else body
        return {row["id"] for row in rows}

    def test_own_object_is_listed_and_readable(self, api_client, account):
        obj = self.make_object(account)
        assert obj.pk in self.listed_ids(api_client.get(self.list_url))
        assert api_client.get(self.detail_url(obj)).status_code == 200

    def test_other_accounts_object_is_404(self, api_client, account, other_account):
        obj = self.make_object(other_account)
        assert api_client.get(self.detail_url(obj)).status_code == 404

    def test_other_accounts_object_is_absent_from_list(self, api_client, account, other_account):
        obj = self.make_object(other_account)
        assert obj.pk not in self.listed_ids(api_client.get(self.list_url))

    def test_actions_on_other_accounts_object_are_404(self, api_client, account, other_account):
        obj = self.make_object(other_account)
        for method, suffix in self.detail_actions:
            response = getattr(api_client, method)(f"{self.detail_url(obj)}{suffix}", {}, format="json")
            assert response.status_code == 404, (method, suffix, response.status_code)

    def test_nonexistent_object_is_404_like_a_foreign_one(self, api_client, account):
        assert api_client.get(f"{self.list_url}999999999/").status_code == 404


