"""A search's study opens in optuna-dashboard as it is: the dashboard's own WSGI app, in-process, reads the
folder's study.db and finds the trials, their learning curves (user attr `curve`) and the same Pareto front as
pareto.json."""
from __future__ import annotations

import io
import json

from tests.conftest import run_dlx


def get(app, path: str) -> dict:
    """GET `path` from a WSGI app; the decoded JSON body."""
    status = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "localhost",
               "SERVER_PORT": "80", "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO()}
    body = b"".join(app(environ, lambda code, headers, exc_info=None: status.append(code)))
    assert status[0].startswith("200"), (status, body[:300])
    return json.loads(body)


def test_optuna_dashboard_reads_the_study_and_its_front(make_space, tmp_path):
    import optuna_dashboard
    space = make_space("sampler: random\npruner: asha\ntrials: 4\nseed: 2\noverrides: {train.epochs: 2}\n"
                       "objectives:\n  - val_accuracy: max\n  - params: min\n",
                       params="params:\n  model.vars.width: {choice: [8, 16, 32]}\n")
    out = tmp_path / "search"
    run_dlx("search", space, "--out", out, "--quiet", check=0)
    app = optuna_dashboard.wsgi(f"sqlite:///{out / 'study.db'}")
    studies = get(app, "/api/studies")["study_summaries"]
    assert [s["study_name"] for s in studies] == ["space"]
    assert [d for d in studies[0]["directions"]] == ["maximize", "minimize"]
    detail = get(app, f"/api/studies/{studies[0]['study_id']}")
    assert len(detail["trials"]) == 4
    assert all("curve" in {a["key"] for a in t["user_attrs"]} for t in detail["trials"])  # the curves dlx prunes on
    front = json.loads((out / "pareto.json").read_text())["front"]
    assert sorted(t["number"] for t in detail["best_trials"]) == sorted(m["number"] for m in front)
