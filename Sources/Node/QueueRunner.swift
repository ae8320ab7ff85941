import Directory
import Foundation
import Logging
import Metrics
import NIOPosix
import SMTP
import ServiceLifecycle
import SharedTree

/// Works the shared spool: any node claims due entries (a lock file per entry), delivers local
/// recipients into their mailboxes and defers the rest with backoff. A node that dies holding
/// a claim loses it after the stale timeout and another node's runner finishes the entry.
///
/// Remote recipients need the outbound SMTP client (MX lookup, STARTTLS, DSNs), which is
/// not written yet: they stay deferred with that reason in the entry.
struct QueueRunner: Service {
    static let pollInterval: Duration = .seconds(1)
    static let batchSize = 100

    let runtime: NodeRuntime
    let mail: MailServices
    let fileThreads: NIOThreadPool
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                // A draining or maintenance node takes no new work; its claims expire to others.
                if runtime.effectiveState == .active {
                    await runOnce()
                }
                try? await Task.sleep(for: Self.pollInterval)
            }
        }
    }

    @discardableResult
    func runOnce(now: Date = Date()) async -> Int {
        let queue = QueueStore(layout: mail.layout, node: mail.nodeName, lockOptions: mail.lockOptions)
        let due: [QueueEnvelope]
        do {
            due = try await fileThreads.runIfActive { try queue.due(now: now) }
        } catch {
            logger.error("cannot read the queue", metadata: ["error": "\(error)"])
            return 0
        }
        var handled = 0
        for envelope in due.prefix(Self.batchSize) {
            guard let claim = try? await fileThreads.runIfActive({ try queue.claim(envelope.id) }) else { continue }
            await work(claim)
            handled += 1
        }
        return handled
    }

    private func work(_ claim: QueueClaim) async {
        var claim = claim
        let id = claim.envelope.id
        var results: [Int: (QueueRecipient.Status, String)] = [:]
        let message: [UInt8]
        do {
            let current = claim
            message = try await fileThreads.runIfActive { try current.message() }
        } catch {
            logger.error("queue entry without readable message", metadata: ["id": "\(id)", "error": "\(error)"])
            _ = try? claim.release()
            return
        }
        let context = SMTPConnectionContext(remoteAddress: "queue", localAddress: "queue", isSubmission: true, sessionID: id)
        for (index, recipient) in claim.envelope.recipients.enumerated() where recipient.status == .pending {
            let result = await deliver(recipient.address, message: message, context: context)
            Counter(label: "svcpkg_queue_deliveries_total", dimensions: [("result", result.0.rawValue)]).increment()
            results[index] = result
        }
        let outcome = results
        do {
            try claim.record { envelope in
                for (index, result) in outcome {
                    envelope.recipients[index].status = result.0
                    envelope.recipients[index].lastResult = result.1
                }
            }
            if claim.envelope.pendingRecipients.isEmpty {
                try claim.complete()
                logger.info("queue entry done", metadata: ["id": "\(id)"])
            } else {
                let attempts = claim.envelope.attempts + 1
                let delay = min(3600, 60 * pow(2, Double(min(attempts - 1, 6))))
                try claim.defer(until: Date().addingTimeInterval(delay))
                logger.info("queue entry deferred", metadata: [
                    "id": "\(id)", "pending": "\(claim.envelope.pendingRecipients.count)", "retryIn": "\(Int(delay))s",
                ])
            }
        } catch {
            logger.error("cannot update queue entry", metadata: ["id": "\(id)", "error": "\(error)"])
        }
    }

    private func deliver(_ address: String, message: [UInt8], context: SMTPConnectionContext) async -> (QueueRecipient.Status, String) {
        guard let at = address.lastIndex(of: "@") else { return (.failed, "550 5.1.3 invalid address") }
        let mailbox = SMTPMailbox(localPart: String(address[..<at]), domain: String(address[address.index(after: at)...]))
        let targets: [DeliveryTarget]
        do {
            guard let resolved = try await mail.resolve(mailbox, context: context) else {
                return (.failed, "550 5.1.1 no such user here")
            }
            targets = resolved
        } catch let refusal as MailServices.RecipientRefusal {
            return refusal.reply.code >= 500 ? (.failed, refusal.reply.encoded()) : (.pending, refusal.reply.encoded())
        } catch {
            return (.pending, "451 4.3.0 lookup failed: \(error)")
        }
        for target in targets {
            switch target {
            case .queue:
                return (.pending, "451 4.4.0 remote delivery is not available in this build yet")
            case .mailbox(let local, let quota):
                let mail = self.mail
                do {
                    try await fileThreads.runIfActive { try mail.deliverLocally(message, to: local, quotaBytes: quota) }
                } catch let error as MailStoreError {
                    if case .overQuota = error { return (.pending, "452 4.2.2 mailbox full") }
                    return (.pending, "451 4.3.0 \(error)")
                } catch {
                    return (.pending, "451 4.3.0 \(error)")
                }
            }
        }
        return (.delivered, "250 2.0.0 delivered")
    }
}
