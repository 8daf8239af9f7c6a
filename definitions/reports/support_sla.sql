-- Support: load, time to first response, topics, satisfaction (ratings, and the period's NPS:
-- promoters 9-10 minus detractors 0-6), and the share answered and closed within the SLA.
select
    tp.label as topic,
    count(*) as tickets,
    -- Exact seconds (numeric epoch) summed, minutes divided out once: exact halves round
    -- away from zero.
    round(sum(extract(epoch from t.first_response_at - t.created_at))
          / (60 * count(t.first_response_at)), 1) as avg_first_response_minutes,
    round(count(*) filter (where t.first_response_at <= t.created_at
                           + sp.first_response_minutes * interval '1 minute')::numeric
          / count(*), 4) as first_response_within_sla,
    round(count(*) filter (where t.resolved_at <= t.created_at
                           + sp.resolution_minutes * interval '1 minute')::numeric
          / count(*), 4) as closed_within_sla,
    round(avg(rt.score), 2) as avg_rating,
    count(rt.ticket_id) as ratings,
    (select round(100.0 * (count(*) filter (where n.score >= 9)
                           - count(*) filter (where n.score <= 6)) / nullif(count(*), 0), 1)
     from support.nps_responses n
     where n.answered_at >= :period_start and n.answered_at < :period_end) as nps
from support.tickets t
join support.topics tp on tp.id = t.topic_id
join support.sla_policies sp on sp.id = t.sla_policy_id
left join support.ratings rt on rt.ticket_id = t.id
where t.created_at >= :period_start and t.created_at < :period_end
group by tp.label
order by tickets desc, tp.label collate "C"
