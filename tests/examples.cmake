# Example clients (examples/go, examples/python) run against a live cachecar.
# Included from tests/CMakeLists.txt (which finds BASH). Each test installs
# what it needs (Go modules, a Python virtualenv with pinned wheels) under its
# work dir in the build tree, so the first run needs the Go module proxy and
# PyPI and takes about a minute; later runs reuse those caches.
set(CACHECAR_EXAMPLES_DIR "${CMAKE_CURRENT_LIST_DIR}/examples")

add_test(NAME examples_go
  COMMAND ${BASH} ${CACHECAR_EXAMPLES_DIR}/run_go.sh
          $<TARGET_FILE:cachecar> ${CMAKE_CURRENT_BINARY_DIR}/examples-go)
add_test(NAME examples_python
  COMMAND ${BASH} ${CACHECAR_EXAMPLES_DIR}/run_python.sh
          $<TARGET_FILE:cachecar> ${CMAKE_CURRENT_BINARY_DIR}/examples-python)
set_tests_properties(examples_go examples_python PROPERTIES
  LABELS "e2e;examples" TIMEOUT 600)
