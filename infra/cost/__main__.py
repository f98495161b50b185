"""``python -m infra.cost`` (``make cost``): print each profile's idle cost as Markdown."""

from infra.cost.report import main

main()
