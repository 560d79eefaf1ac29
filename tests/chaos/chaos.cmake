# The chaos checker (tests/chaos, issue #12): real replicas on a real
# PostgreSQL and Kafka that the run starts itself, writers and readers, a
# seeded nemesis, and the history checker. include()d from
# tests/CMakeLists.txt (which finds BASH).
#
#   chaos_setup          the virtualenv (pinned wheels; needs PyPI on the
#                        first run) and the stubs from proto/
#   chaos_checker_rules  the checker's rules on synthetic histories
#   chaos_short          a 60 s run with the faults and bound below: must
#                        pass
#   chaos_planted        a run with a planted bug (every replica drops the
#                        sync events whose version is a multiple of 3): the
#                        checker must report C4 and C5 violations, or the
#                        test fails. With a 5 s bound: a dropped event is
#                        never applied, so the stale value outlives any
#                        bound, while at 1 s a loaded machine (load 30 here)
#                        kept the replicas bypassing to the store for most
#                        of the run and the bug went unseen. The staleness
#                        auditor is off (--audit-rate 0): at its default it
#                        repairs the dropped events' keys within seconds,
#                        which is its job, and hides the bug from the
#                        checker (seen: the run passed C4 and C5 with it on).
#
# The short run's faults and bound: every fault kind of #12 (replica pause
# and kill, broker kill and pause, PostgreSQL backends killed and restarts,
# garbage on the topic, partitions added) with the contract's 1 s bound.
set(CHAOS_SHORT_ARGS --faults all --max-staleness 1s)
set(CHAOS_SEED 12 CACHE STRING "seed of the ctest chaos runs (tests/chaos)")

set(CHAOS_SH "${CMAKE_CURRENT_LIST_DIR}/run.sh")
set(CHAOS_ENV "CACHECAR_BIN=$<TARGET_FILE:cachecar>" "CHAOS_VENV_DIR=${CMAKE_CURRENT_BINARY_DIR}/chaos-venv"
  "LIBCACHECAR_LOCALREAD=$<TARGET_FILE:cachecar_localread_shared>")
add_test(NAME chaos_setup COMMAND ${BASH} ${CHAOS_SH} --setup-only)
add_test(NAME chaos_checker_rules COMMAND ${BASH} ${CHAOS_SH} --unit)
add_test(NAME chaos_short
  COMMAND ${BASH} ${CHAOS_SH} --duration 60s --seed ${CHAOS_SEED} ${CHAOS_SHORT_ARGS}
          --work ${CMAKE_CURRENT_BINARY_DIR}/chaos-short)
add_test(NAME chaos_planted
  COMMAND ${BASH} ${CHAOS_SH} --duration 25s --seed ${CHAOS_SEED} --faults replica-kill,garbage
          --max-staleness 5s --audit-rate 0 --plant skip_event/3 --expect-violations C4,C5 --settle 15s
          --work ${CMAKE_CURRENT_BINARY_DIR}/chaos-planted)
set_tests_properties(chaos_setup PROPERTIES FIXTURES_SETUP chaos_venv TIMEOUT 900
  LABELS "chaos" ENVIRONMENT "${CHAOS_ENV}")
set_tests_properties(chaos_checker_rules PROPERTIES FIXTURES_REQUIRED chaos_venv TIMEOUT 120
  LABELS "chaos" ENVIRONMENT "${CHAOS_ENV}")
# Each starts its own PostgreSQL and Kafka; the lock keeps them from running
# beside the other heavy tests on a small machine.
set_tests_properties(chaos_short chaos_planted PROPERTIES FIXTURES_REQUIRED chaos_venv TIMEOUT 600
  LABELS "chaos;e2e" ENVIRONMENT "${CHAOS_ENV}" RESOURCE_LOCK "postgres;kafka")
