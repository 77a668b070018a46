"""The dashboard (``tokentrace ui``) and the shareable HTML report (``tokentrace report --html``).

``view`` gathers the numbers from the functions the command line reports with (``_report``,
``_economics``, the task trees); ``render`` draws them as HTML with server-side SVG charts;
``server`` serves them (Starlette on uvicorn, the ``ui`` extra). Only ``server`` imports the
extra's libraries, and only ``tokentrace ui`` imports ``server``.
"""
