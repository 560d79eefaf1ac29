# Example apps (examples/go, examples/python, which use the client libraries)
# run against a live cachecar. Included from tests/CMakeLists.txt after
# clients.cmake. The Go test shares the clients_go fixture's module and build
# caches; the Python one uses the clients_python fixture's virtualenv.
set(CACHECAR_EXAMPLES_DIR "${CMAKE_CURRENT_LIST_DIR}/examples")

add_test(NAME examples_go
  COMMAND ${BASH} ${CACHECAR_EXAMPLES_DIR}/run_go.sh
          $<TARGET_FILE:cachecar> ${CMAKE_CURRENT_BINARY_DIR}/examples-go ${CLIENTS_GO_WORK})
add_test(NAME examples_python
  COMMAND ${BASH} ${CACHECAR_EXAMPLES_DIR}/run_python.sh
          $<TARGET_FILE:cachecar> ${CMAKE_CURRENT_BINARY_DIR}/examples-python ${CLIENTS_PYTHON_WORK}/venv)
set_tests_properties(examples_go examples_python PROPERTIES
  LABELS "e2e;examples" TIMEOUT 600)
set_tests_properties(examples_python PROPERTIES FIXTURES_REQUIRED clients_python)
set_tests_properties(examples_go PROPERTIES FIXTURES_REQUIRED clients_go)
