# Example apps (examples/go, examples/python, which use the client libraries)
# run against a live cachecar. Included from tests/CMakeLists.txt after
# clients.cmake. The Go test fetches its modules under its work dir in the
# build tree (the module proxy, the first time); the Python one uses the
# virtualenv of the clients_python fixture.
set(CACHECAR_EXAMPLES_DIR "${CMAKE_CURRENT_LIST_DIR}/examples")

add_test(NAME examples_go
  COMMAND ${BASH} ${CACHECAR_EXAMPLES_DIR}/run_go.sh
          $<TARGET_FILE:cachecar> ${CMAKE_CURRENT_BINARY_DIR}/examples-go)
add_test(NAME examples_python
  COMMAND ${BASH} ${CACHECAR_EXAMPLES_DIR}/run_python.sh
          $<TARGET_FILE:cachecar> ${CMAKE_CURRENT_BINARY_DIR}/examples-python ${CLIENTS_PYTHON_WORK}/venv)
set_tests_properties(examples_go examples_python PROPERTIES
  LABELS "e2e;examples" TIMEOUT 600)
set_tests_properties(examples_python PROPERTIES FIXTURES_REQUIRED clients_python)
