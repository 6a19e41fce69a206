#!/bin/sh
# Runs on the controller before a python_plugin.so build: one build per kind at a time,
# when several rollouts share the controller's cache (parallel runs of site.yml, CI
# lanes). $1 is the cache entry (<cache>/<key>/python_plugin.so); its lock is the
# directory $1.building, with the pid of the ansible-playbook that holds it.
# Prints one word: "claimed" (build it, then remove the lock), "built" (another run
# built it meanwhile: nothing to do) or "unlocked" (the lock could not be had within
# the wait: build anyway; the cache entry is renamed into place, so two builds of one
# kind never mix). Every wait is bounded.
set -u
artifact=$1
lock=$artifact.building
wait=${2:-900}
# The lock counts while the ansible-playbook that took it lives: the farthest ancestor
# whose command line names it. Not the nearest: that is the worker Ansible forked for
# this one task (same command line), gone when the task ends. An interrupted run frees
# its lock at once.
owner= pid=$$ hops=0
while [ "$hops" -lt 16 ]; do
    pid=$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ')
    case $pid in ''|0|1) break ;; esac
    case $(ps -ww -o args= -p "$pid" 2>/dev/null) in *ansible-playbook*) owner=$pid ;; esac
    hops=$((hops + 1))
done
mkdir -p "$(dirname "$artifact")" || exit 1
waited=0
while ! mkdir "$lock" 2>/dev/null; do
    [ -e "$artifact" ] && { echo built; exit 0; }
    holder=$(cat "$lock/pid" 2>/dev/null)
    # A lock whose run is gone (interrupted), or older than any build: taken over.
    if { [ -n "$holder" ] && ! kill -0 "$holder" 2>/dev/null; } \
        || [ -n "$(find "$lock" -maxdepth 0 -mmin +60 2>/dev/null)" ]; then
        rm -rf "$lock"
        continue
    fi
    if [ "$waited" -ge "$wait" ]; then
        echo unlocked
        exit 0
    fi
    sleep 1
    waited=$((waited + 1))
done
[ -n "$owner" ] && echo "$owner" > "$lock/pid"
if [ -e "$artifact" ]; then
    rm -rf "$lock"
    echo built
    exit 0
fi
echo claimed
