#ifndef RTP_CLIBXML2_SHIM_H
#define RTP_CLIBXML2_SHIM_H
/* Debian's libxml2 is built with ICU, so encoding.h pulls in <unicode/ucnv.h>. Swift's Foundation
 * carries its own, different ICU module, and a Swift file that sees both fails to compile
 * ("'UErrorCode' has different definitions in different modules"). The only thing ICU adds to
 * the headers is two pointer fields at the end of xmlCharEncodingHandler, a struct we never
 * allocate or read; hiding them changes nothing we use. */
#include <libxml/xmlversion.h>
#undef LIBXML_ICU_ENABLED
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/SAX2.h>
#include <libxml/tree.h>
#include <libxml/dict.h>
#include <libxml/xmlschemas.h>
#include <libxml/xmlreader.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlIO.h>

/* xmlFree is a global function pointer (a macro in thread-alloc builds): call it through a function. */
static inline void rtp_xml_free(void *p) { xmlFree(p); }

/* Generic (unstructured) error callbacks are variadic, which Swift cannot define. This one
 * discards them; every error that matters arrives through a structured handler instead. */
static inline void rtp_xml_generic_error_discard(void *ctx, const char *msg, ...) {
    (void)ctx; (void)msg;
}

/* Route this thread's generic errors to the discarding callback (libxml2 keeps them per thread). */
static inline void rtp_xml_discard_generic_errors(void) {
    xmlSetGenericErrorFunc(NULL, rtp_xml_generic_error_discard);
}

/* Restore libxml2's default generic error callback (stderr) for this thread. */
static inline void rtp_xml_default_generic_errors(void) {
    xmlSetGenericErrorFunc(NULL, NULL);
}
#endif
