/**
 * Ids in the four Cap'n Proto RPC tables, branded and named from *our* table's point of view.
 *
 * A peer's QuestionId is our AnswerId and a peer's ExportId is our ImportId (and back). The
 * inversion when reading or writing a peer's message is written here, once; nowhere else turns a
 * plain number into an id.
 *
 * Tests: test/wire/envelope.test.ts; the type checker, everywhere an id crosses.
 */
declare const brand: unique symbol;

/** A call we asked: its results arrive in a Return carrying this id. */
export type QuestionId = number & { readonly [brand]: "QuestionId" };
/** A call the peer asked us. */
export type AnswerId = number & { readonly [brand]: "AnswerId" };
/** A capability the peer hosts and we hold. */
export type ImportId = number & { readonly [brand]: "ImportId" };
/** A capability we host and the peer holds. */
export type ExportId = number & { readonly [brand]: "ExportId" };

/** The peer's questionId (Call, Bootstrap, Finish) names an entry of our answer table. */
export const answerIdFromPeer = (peerQuestionId: number): AnswerId => peerQuestionId as AnswerId;
/** The peer's answerId (Return) names an entry of our question table. */
export const questionIdFromPeer = (peerAnswerId: number): QuestionId => peerAnswerId as QuestionId;
/** senderHosted / senderPromise / Resolve.promiseId from the peer name our imports. */
export const importIdFromPeer = (peerExportId: number): ImportId => peerExportId as ImportId;
/** receiverHosted and MessageTarget.importedCap from the peer name our exports. */
export const exportIdFromPeer = (peerImportId: number): ExportId => peerImportId as ExportId;
/** Ids we allocate ourselves. */
export const newQuestionId = (n: number): QuestionId => n as QuestionId;
export const newExportId = (n: number): ExportId => n as ExportId;
