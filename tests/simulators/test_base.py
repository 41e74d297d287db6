"""The simulator base: routes, JSON, fault rules, counters and the control API, over real HTTP."""
import pytest
import requests

from simulators.base import HttpError, Request, Response, Simulator, route


class EchoSimulator(Simulator):
    name = "echo"

    def reset_state(self):
        self.items = {}

    def state(self):
        return {"items": len(self.items)}

    @route("POST", r"/items/(?P<key>\w+)")
    def put_item(self, request: Request) -> Response:
        self.items[request.params["key"]] = request.json()
        return Response(201, {"key": request.params["key"], "q": request.arg("q")})

    @route("GET", r"/items/(?P<key>\w+)")
    def get_item(self, request: Request) -> Response:
        if request.params["key"] not in self.items:
            raise HttpError(404, "no such item")
        return Response(200, self.items[request.params["key"]])


@pytest.fixture
def sim():
    with EchoSimulator() as simulator:
        yield simulator


def test_routes_answer_json_and_errors(sim):
    created = requests.post(f"{sim.url}/items/a?q=1", json={"x": 1}, timeout=5)
    assert created.status_code == 201
    assert created.json() == {"key": "a", "q": "1"}
    assert requests.get(f"{sim.url}/items/a", timeout=5).json() == {"x": 1}
    missing = requests.get(f"{sim.url}/items/b", timeout=5)
    assert (missing.status_code, missing.json()) == (404, "no such item")
    assert requests.get(f"{sim.url}/nowhere", timeout=5).status_code == 404
    assert sim.counters["requests:put_item"] == 1


def test_status_fault_fires_the_given_number_of_times(sim):
    sim.faults.add(route="get_item", kind="status", status=503, times=2)
    requests.post(f"{sim.url}/items/a", json=1, timeout=5)
    codes = [requests.get(f"{sim.url}/items/a", timeout=5).status_code for _ in range(3)]
    assert codes == [503, 503, 200]


def test_lost_answer_runs_the_route_then_drops_the_connection(sim):
    sim.faults.add(route="put_item", kind="lost_answer", times=1)
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{sim.url}/items/a", json={"kept": True}, timeout=5)
    assert requests.get(f"{sim.url}/items/a", timeout=5).json() == {"kept": True}


def test_drop_does_not_run_the_route(sim):
    sim.faults.add(route="put_item", kind="drop", times=1)
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{sim.url}/items/a", json=1, timeout=5)
    assert requests.get(f"{sim.url}/items/a", timeout=5).status_code == 404


def test_rate_limit_answers_429_with_retry_after(sim):
    sim.faults.add(route="*", kind="rate_limit", retry_after=7, times=1)
    answer = requests.get(f"{sim.url}/items/a", timeout=5)
    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "7")


def test_control_api_sets_faults_reads_state_and_resets(sim):
    requests.post(f"{sim.url}/items/a", json=1, timeout=5)
    assert requests.post(f"{sim.url}/_sim/faults", json=[{"route": "get_item", "status": 500}], timeout=5).ok
    assert requests.get(f"{sim.url}/items/a", timeout=5).status_code == 500
    state = requests.get(f"{sim.url}/_sim/state", timeout=5).json()
    assert state["state"] == {"items": 1}
    assert state["faults"][0]["status"] == 500
    assert requests.post(f"{sim.url}/_sim/faults", json=[{"kind": "nonsense"}], timeout=5).status_code == 400
    requests.post(f"{sim.url}/_sim/reset", timeout=5)
    assert requests.get(f"{sim.url}/items/a", timeout=5).status_code == 404
