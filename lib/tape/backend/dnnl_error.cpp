#include "tape/backend/dnnl_error.hpp"

#include <dnnl.hpp>
#include <dnnl_debug.h>

#include <new>
#include <string>

namespace tape::backend {

void rethrow_as_error(const char* op, ShapeRefs shapes) {
  std::string where;
  for (const Shape* s : shapes) where += (where.empty() ? " for shapes " : " and ") + shape_str(*s);
  try {
    throw;
  } catch (const dnnl::error& e) {
    throw Error(str_cat(op, ": oneDNN failed (", dnnl_status2str(e.status), ": ", e.what(), ")", where));
  } catch (const std::bad_alloc&) {
    throw Error(str_cat(op, ": out of memory", where));
  } catch (const std::exception& e) {
    throw Error(str_cat(op, ": ", e.what(), where));
  } catch (...) {
    throw Error(str_cat(op, ": unknown exception", where));
  }
}

}  // namespace tape::backend
