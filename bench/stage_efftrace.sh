# Sourced by the scripts that run on a machine where efftrace is not installed (the lent GPU):
# makes `import efftrace` find this checkout, laid out as `pip install` would lay it out
# (efftrace/ = analyzer/facade/, efftrace/recorder = recorder/, efftrace/analyzer = analyzer/),
# with symbolic links in a temporary folder that leads PYTHONPATH. Needs: project=<checkout>.
staged=$(mktemp -d)
mkdir "$staged/efftrace"
ln -s "$project/analyzer/facade/__init__.py" "$staged/efftrace/__init__.py"
ln -s "$project/recorder" "$staged/efftrace/recorder"
ln -s "$project/analyzer" "$staged/efftrace/analyzer"
export PYTHONPATH="$staged:$project${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
