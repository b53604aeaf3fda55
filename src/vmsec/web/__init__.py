"""The vmsec web service: a server-rendered dashboard and a REST API (``/api/v1``) over the findings
store, on FastAPI and uvicorn (the ``service`` extra). :func:`vmsec.web.app.create_app` builds it;
``vmsec serve`` runs it. Authentication, authorisation and audit live in :mod:`vmsec.service`;
:mod:`vmsec.web.security` attaches them to every route (deny by default)."""
