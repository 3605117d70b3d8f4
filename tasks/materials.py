"""Sites' materials rendered into the content-addressed store, as a Prefect task: the
materials stage submits batches of sites (tasks.site_pdfs.pack_sites) to its Dask task
runner, and each batch renders its sites' missing PDFs (tasks.site_pdfs.render_sites).
"""

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.site_pdfs import render_sites

# The task wraps a module-level function, so that a Dask worker unpickles it by reference
# (importing tasks.site_pdfs, and so reportlab and the font, once per worker process) rather
# than receiving the function's code and globals by value.
render_sites_materials = task(
    name="render-sites-materials",
    task_run_name="render {label}",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=1,  # a retry renders only what the failed try had not stored yet
)(render_sites)
